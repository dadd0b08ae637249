/* Swagger UI from the vendored bundle, pointed at this gateway's own OpenAPI document. */
"use strict";
(() => {
  const node = document.getElementById("swagger-ui");
  if (!node || typeof SwaggerUIBundle !== "function") return;
  SwaggerUIBundle({
    url: node.dataset.spec,
    dom_id: "#swagger-ui",
    validatorUrl: null,        // the default validator is an outside service
    deepLinking: true,
    docExpansion: "none",
    defaultModelsExpandDepth: 0,
    tryItOutEnabled: false,
    persistAuthorization: false,
    onComplete: () => {
      // Swagger UI renders its server picker without a name; give it one for screen readers.
      const servers = node.querySelector("select#servers");
      if (servers && !servers.getAttribute("aria-label")) servers.setAttribute("aria-label", "Server");
    },
    // "Try it out" spends from the token this tab keeps (from /fund or /session) unless Authorize set one.
    requestInterceptor: (request) => {
      const token = Ark.getToken();
      if (token && !request.headers.Authorization) request.headers.Authorization = "Bearer " + token;
      return request;
    },
  });
})();
