// Starts Swagger UI on /api/docs (a file, not an inline script: the CSP allows no inline script).
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    // Deep links put a link inside each operation's toggle button (axe: nested-interactive,
    // a control screen readers cannot reach); without them the path is plain text.
    deepLinking: false,
    showExtensions: true,
    showCommonExtensions: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
  // Swagger UI's copy buttons (beside a curl command or a response) are empty <button>s drawn
  // with a background image: give each a name a screen reader can say (axe: button-name).
  function name() {
    root.querySelectorAll(".copy-to-clipboard button:not([aria-label])").forEach(function (b) {
      b.setAttribute("aria-label", "Copy to clipboard");
    });
  }
  new MutationObserver(name).observe(root, { childList: true, subtree: true });
});
