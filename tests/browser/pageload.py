"""What a page loaded, and what went wrong while it did."""

from urllib.parse import urlsplit


class PageLoad:
    """Every response a page got, and every problem: a 4xx/5xx, a failed request, a request that left the site."""

    def __init__(self, page, base_url: str):
        self.base_url = base_url
        self.responses = {}
        self.problems = []
        page.route("**/*", self._only_the_site)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)

    def _only_the_site(self, route) -> None:
        if route.request.url.startswith(self.base_url + "/"):
            route.continue_()
        else:
            self.problems.append(f"{route.request.url}: not served by the site (needs the internet)")
            route.abort()

    def _on_response(self, response) -> None:
        self.responses[urlsplit(response.url).path] = response
        if response.status >= 400:
            self.problems.append(f"{response.url}: HTTP {response.status}")

    def _on_failed(self, request) -> None:
        response = self.responses.get(urlsplit(request.url).path)
        already_reported = response is not None and response.status >= 400
        if request.url.startswith(self.base_url + "/") and not already_reported:
            self.problems.append(f"{request.url}: {request.failure}")
