from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from agents import llm_services as services
from agents import selectors
from agents.llm_serializers import (
    LlmModelInputSerializer,
    LlmModelSerializer,
    LlmProviderInputSerializer,
    LlmProviderSerializer,
)
from everruns.api.pagination import list_schema, page_parameters, paginated
from everruns.api.views import errors, validated

PAGE = page_parameters()


# `/v1/llm-providers` and `/v1/llm-providers/{provider_id}`.
class LlmProviderViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="llm_providers_list",
        parameters=PAGE,
        responses={200: list_schema(LlmProviderSerializer), **errors(400)},
    )
    def list(self, request):
        return paginated(request, selectors.provider_list(), LlmProviderSerializer)

    @extend_schema(
        operation_id="llm_providers_create",
        request=LlmProviderInputSerializer,
        responses={201: LlmProviderSerializer, **errors(400, 415)},
    )
    def create(self, request):
        provider = services.provider_create(**validated(LlmProviderInputSerializer, request.data))
        return Response(LlmProviderSerializer(provider).data, status=201)

    @extend_schema(operation_id="llm_providers_get", responses={200: LlmProviderSerializer, **errors(404)})
    def retrieve(self, request, provider_id):
        return Response(LlmProviderSerializer(selectors.provider_get(provider_id=provider_id)).data)

    @extend_schema(
        operation_id="llm_providers_update",
        request=LlmProviderInputSerializer,
        responses={200: LlmProviderSerializer, **errors(400, 404, 415)},
    )
    def partial_update(self, request, provider_id):
        provider = selectors.provider_get(provider_id=provider_id)
        data = validated(LlmProviderInputSerializer, request.data, partial=True)
        return Response(LlmProviderSerializer(services.provider_update(provider=provider, data=data)).data)

    @extend_schema(operation_id="llm_providers_delete", responses={204: None, **errors(404, 409)})
    def destroy(self, request, provider_id):
        services.provider_delete(provider=selectors.provider_get(provider_id=provider_id))
        return Response(status=204)


# `/v1/llm-providers/{provider_id}/models`: one provider's models.
class LlmProviderModelViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="llm_provider_models_list",
        parameters=PAGE,
        responses={200: list_schema(LlmModelSerializer), **errors(400, 404)},
    )
    def list(self, request, provider_id):
        provider = selectors.provider_get(provider_id=provider_id)
        return paginated(request, selectors.model_list(provider=provider), LlmModelSerializer)

    @extend_schema(
        operation_id="llm_provider_models_create",
        request=LlmModelInputSerializer,
        responses={201: LlmModelSerializer, **errors(400, 404, 409, 415)},
    )
    def create(self, request, provider_id):
        provider = selectors.provider_get(provider_id=provider_id)
        model = services.model_create(provider=provider, **validated(LlmModelInputSerializer, request.data))
        return Response(LlmModelSerializer(model).data, status=201)


# `/v1/llm-models` and `/v1/llm-models/{model_id}`: every provider's models (created under a provider).
class LlmModelViewSet(viewsets.ViewSet):
    @extend_schema(
        operation_id="llm_models_list", parameters=PAGE, responses={200: list_schema(LlmModelSerializer), **errors(400)}
    )
    def list(self, request):
        return paginated(request, selectors.model_list(), LlmModelSerializer)

    @extend_schema(operation_id="llm_models_get", responses={200: LlmModelSerializer, **errors(404)})
    def retrieve(self, request, model_id):
        return Response(LlmModelSerializer(selectors.model_get(model_id=model_id)).data)

    @extend_schema(
        operation_id="llm_models_update",
        request=LlmModelInputSerializer,
        responses={200: LlmModelSerializer, **errors(400, 404, 409, 415)},
    )
    def partial_update(self, request, model_id):
        model = selectors.model_get(model_id=model_id)
        data = validated(LlmModelInputSerializer, request.data, partial=True)
        return Response(LlmModelSerializer(services.model_update(model=model, data=data)).data)

    @extend_schema(operation_id="llm_models_delete", responses={204: None, **errors(404, 409)})
    def destroy(self, request, model_id):
        services.model_delete(model=selectors.model_get(model_id=model_id))
        return Response(status=204)
