from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from agents import llm_services as services
from agents.llm_serializers import (
    LlmModelInputSerializer,
    LlmModelSerializer,
    LlmProviderInputSerializer,
    LlmProviderSerializer,
)
from agents.models import LlmModel, LlmProvider
from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated
from everruns.errors import NotFound

PAGE = page_parameters()


def provider_get(provider_id) -> LlmProvider:
    provider = LlmProvider.objects.filter(pk=provider_id).first()
    if provider is None:
        raise NotFound("Provider not found")
    return provider


def model_get(model_id) -> LlmModel:
    model = LlmModel.objects.filter(pk=model_id).first()
    if model is None:
        raise NotFound("Model not found")
    return model


class ProviderListView(APIView):
    @extend_schema(
        operation_id="llm_providers_list",
        parameters=PAGE,
        responses={200: list_schema(LlmProviderSerializer), **errors(400)},
    )
    def get(self, request):
        return paginated(request, LlmProvider.objects.order_by("-id"), LlmProviderSerializer)

    @extend_schema(
        operation_id="llm_providers_create",
        request=LlmProviderInputSerializer,
        responses={201: LlmProviderSerializer, **errors(400, 415)},
    )
    def post(self, request):
        provider = services.provider_create(**validated(LlmProviderInputSerializer, request.data))
        return Response(LlmProviderSerializer(provider).data, status=201)


class ProviderDetailView(APIView):
    @extend_schema(operation_id="llm_providers_get", responses={200: LlmProviderSerializer, **errors(404)})
    def get(self, request, provider_id):
        return Response(LlmProviderSerializer(provider_get(provider_id)).data)

    @extend_schema(
        operation_id="llm_providers_update",
        request=LlmProviderInputSerializer,
        responses={200: LlmProviderSerializer, **errors(400, 404, 415)},
    )
    def patch(self, request, provider_id):
        provider = provider_get(provider_id)
        data = validated(LlmProviderInputSerializer, request.data, partial=True)
        return Response(LlmProviderSerializer(services.provider_update(provider=provider, data=data)).data)

    @extend_schema(operation_id="llm_providers_delete", responses={204: None, **errors(404, 409)})
    def delete(self, request, provider_id):
        services.provider_delete(provider=provider_get(provider_id))
        return Response(status=204)


class ProviderModelListView(APIView):
    @extend_schema(
        operation_id="llm_provider_models_list",
        parameters=PAGE,
        responses={200: list_schema(LlmModelSerializer), **errors(400, 404)},
    )
    def get(self, request, provider_id):
        provider = provider_get(provider_id)
        return paginated(request, provider.models.order_by("-id"), LlmModelSerializer)

    @extend_schema(
        operation_id="llm_provider_models_create",
        request=LlmModelInputSerializer,
        responses={201: LlmModelSerializer, **errors(400, 404, 409, 415)},
    )
    def post(self, request, provider_id):
        provider = provider_get(provider_id)
        model = services.model_create(provider=provider, **validated(LlmModelInputSerializer, request.data))
        return Response(LlmModelSerializer(model).data, status=201)


class ModelListView(APIView):
    @extend_schema(
        operation_id="llm_models_list", parameters=PAGE, responses={200: list_schema(LlmModelSerializer), **errors(400)}
    )
    def get(self, request):
        return paginated(request, LlmModel.objects.order_by("-id"), LlmModelSerializer)


class ModelDetailView(APIView):
    @extend_schema(operation_id="llm_models_get", responses={200: LlmModelSerializer, **errors(404)})
    def get(self, request, model_id):
        return Response(LlmModelSerializer(model_get(model_id)).data)

    @extend_schema(
        operation_id="llm_models_update",
        request=LlmModelInputSerializer,
        responses={200: LlmModelSerializer, **errors(400, 404, 409, 415)},
    )
    def patch(self, request, model_id):
        model = model_get(model_id)
        data = validated(LlmModelInputSerializer, request.data, partial=True)
        return Response(LlmModelSerializer(services.model_update(model=model, data=data)).data)

    @extend_schema(operation_id="llm_models_delete", responses={204: None, **errors(404, 409)})
    def delete(self, request, model_id):
        services.model_delete(model=model_get(model_id))
        return Response(status=204)
