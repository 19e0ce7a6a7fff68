// Everruns debug pages: the forms write through the JSON API (/v1) with fetch. The page's session cookie
// and CSRF token authorise them when AUTH_MODE is api_key; no key is ever in a page.
"use strict";

const Debug = (() => {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `HTTP ${status}`);
      this.status = status;
      this.code = error.code;
      this.details = error.details || {};
    }
    explain() {
      const lines = Object.entries(this.details).map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`);
      return [this.message, ...lines].join("\n");
    }
  }

  async function api(method, url, body, contentType = "application/json") {
    const headers = { Accept: "application/json", "X-CSRFToken": csrf() };
    const init = { method, headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = contentType;
      init.body = contentType === "application/json" ? JSON.stringify(body) : body;
    }
    const response = await fetch(url, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  function showError(form, error) {
    const box = form.querySelector(".form-error") || document.querySelector(".form-error");
    if (!box) return;
    box.textContent = error ? (error.explain ? error.explain() : String(error)) : "";
    box.hidden = !error;
  }

  // Submit a form through `send(form)`; the button is disabled meanwhile and errors are shown by the form.
  function onSubmit(form, send) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const buttons = form.querySelectorAll("button[type=submit]");
      buttons.forEach((b) => { b.disabled = true; });
      showError(form, null);
      try {
        await send(form);
      } catch (error) {
        showError(form, error);
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
    });
  }

  const goToAgent = (agent) => { window.location.href = `/debug/agents/${agent.id}/`; };

  function agentBody(form) {
    const value = (name) => form.elements[name].value.trim();
    const body = {
      name: value("name"),
      system_prompt: form.elements.system_prompt.value,
      description: value("description") || null,
      tags: value("tags").split(",").map((t) => t.trim()).filter(Boolean),
      capabilities: [...form.querySelectorAll('input[name="capabilities"]:checked')].map((c) => c.value),
      default_model_id: value("default_model_id") || null,
    };
    if (value("max_iterations")) body.max_iterations = Number(value("max_iterations"));
    return body;
  }

  const forms = {
    agent: async (form) => goToAgent(await api("POST", "/v1/agents", agentBody(form))),
    import: async (form) => {
      const file = form.elements.file.files[0];
      const text = file ? await file.text() : form.elements.text.value;
      if (!text.trim()) throw new Error("Choose a file or paste an agent.");
      goToAgent(await api("POST", "/v1/agents/import", text, "text/markdown; charset=utf-8"));
    },
    session: async (form) => {
      const session = await api("POST", form.action, {});
      window.location.href = `/debug/agents/${form.dataset.agent}/sessions/${session.id}/`;
    },
    status: async (form) => {
      await api("PATCH", form.action, { status: form.dataset.status });
      window.location.reload();
    },
  };

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("form[data-api-form]").forEach((form) => {
      const send = forms[form.dataset.apiForm];
      if (send) onSubmit(form, send);
    });
  });

  return { api, onSubmit, showError, ApiError };
})();
