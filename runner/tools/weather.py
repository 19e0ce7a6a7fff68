"""Deterministic fake weather: the same location always gets the same weather."""

import hashlib

from runner.tools.base import Capability, Tool, ToolError, obj

CONDITIONS = ["sunny", "partly cloudy", "cloudy", "light rain", "rain", "thunderstorms", "snow", "fog", "windy"]


def _seed(location: str, salt: str = "") -> int:
    return int(hashlib.sha256(f"{location.strip().lower()}|{salt}".encode()).hexdigest(), 16)


def _location(args: dict) -> str:
    location = args.get("location")
    if not isinstance(location, str) or not location.strip():
        raise ToolError("location is required")
    return location.strip()


def _units(args: dict) -> str:
    units = args.get("units") or "metric"
    if units not in ("metric", "imperial"):
        raise ToolError("units must be metric or imperial")
    return units


def _day(location: str, salt: str, units: str) -> dict:
    seed = _seed(location, salt)
    celsius = (seed % 450) / 10 - 10  # -10.0 .. 34.9
    temperature = round(celsius * 9 / 5 + 32, 1) if units == "imperial" else round(celsius, 1)
    return {
        "temperature": temperature,
        "conditions": CONDITIONS[seed // 7 % len(CONDITIONS)],
        "humidity": 20 + seed // 11 % 75,
        "wind_speed": round((seed // 13 % 400) / 10 * (0.621 if units == "imperial" else 1), 1),
    }


def get_weather(ctx, args):
    location, units = _location(args), _units(args)
    return {"location": location, "units": units, **_day(location, "now", units)}


def get_forecast(ctx, args):
    location, units = _location(args), _units(args)
    days = args.get("days", 3)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 7:
        raise ToolError("days must be an integer from 1 to 7")
    return {
        "location": location,
        "units": units,
        "days": [{"day": i + 1, **_day(location, f"day{i + 1}", units)} for i in range(days)],
    }


UNITS = {"type": "string", "enum": ["metric", "imperial"], "description": "Default metric."}
CAPABILITY = Capability(
    id="test_weather",
    name="Test weather",
    description="Deterministic fake weather and forecasts, for testing tool calls.",
    category="testing",
    system_prompt="Use get_weather and get_forecast for weather questions.",
    tools=[
        Tool(
            "get_weather",
            "Current weather at a location.",
            obj({"location": {"type": "string"}, "units": UNITS}, ["location"]),
            get_weather,
        ),
        Tool(
            "get_forecast",
            "Daily forecast for 1 to 7 days.",
            obj(
                {
                    "location": {"type": "string"},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7},
                    "units": UNITS,
                },
                ["location"],
            ),
            get_forecast,
        ),
    ],
)
