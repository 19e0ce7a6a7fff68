"""A trivial JSON view: the framework floor that bench/run.py compares the API's rates with.

The same stack as every API view (middleware, a DRF APIView, the JSON renderer), with no database
and no Redis (`/health` touches both). Mounted at `/bench/ping` only when `EVERRUNS_BENCH_ROUTES`
is set, and kept out of the OpenAPI document: it is not part of the API.
"""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView


class PingView(APIView):
    @extend_schema(exclude=True)
    def get(self, request):
        return Response({})
