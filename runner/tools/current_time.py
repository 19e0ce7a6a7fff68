from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runner.tools.base import Capability, Tool, ToolError, obj


def get_current_time(ctx, args):
    name = args.get("timezone") or "UTC"
    fmt = args.get("format") or "iso8601"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown timezone: {name}") from None
    now = datetime.now(UTC).astimezone(zone)
    if fmt == "iso8601":
        value = now.isoformat()
    elif fmt == "unix":
        value = int(now.timestamp())
    elif fmt == "human":
        value = now.strftime("%A, %d %B %Y, %H:%M:%S %Z")
    else:
        raise ToolError("format must be iso8601, unix or human")
    return {"time": value, "timezone": name, "format": fmt}


CAPABILITY = Capability(
    id="current_time",
    name="Current time",
    description="Tells the current date and time in any IANA timezone.",
    category="utilities",
    system_prompt="Use get_current_time whenever the answer depends on the current date or time.",
    tools=[
        Tool(
            "get_current_time",
            "The current date and time.",
            obj(
                {
                    "timezone": {"type": "string", "description": "IANA timezone, e.g. Europe/Paris. Default UTC."},
                    "format": {"type": "string", "enum": ["iso8601", "unix", "human"]},
                }
            ),
            get_current_time,
        )
    ],
)
