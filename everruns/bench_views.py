"""Views for measuring, mounted only when `EVERRUNS_BENCH_ROUTES` is set and kept out of the OpenAPI document:
they are not part of the API.

- `/bench/ping`: a trivial JSON view, the framework floor that bench/run.py compares the API's rates with. The same
  stack as every API view (middleware, a DRF APIView, the JSON renderer), with no database and no Redis (`/health`
  touches both).
- `/bench/streams`: what this process's open streams hold of their bodies (sessions.streams.stream.stream_memory).
"""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions.streams.stream import stream_memory


class PingView(APIView):
    @extend_schema(exclude=True)
    def get(self, request):
        return Response({})


class StreamsView(APIView):
    @extend_schema(exclude=True)
    def get(self, request):
        return Response(stream_memory.snapshot())
