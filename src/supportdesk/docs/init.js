// Starts Swagger UI on the /docs page (supportdesk.docs). A file of its own, not an inline
// script, as the page's Content-Security-Policy (`default-src 'self'`) allows no inline script.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // no validator badge: it would send the document to validator.swagger.io
  validatorUrl: null,
});
