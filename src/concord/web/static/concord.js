// Behaviour of the shell's pages, kept out of the HTML: the CSP allows no inline script.

// Choosing a language submits its form at once (a button is offered without JavaScript).
document.addEventListener("change", function (event) {
  var target = event.target;
  if (target instanceof HTMLSelectElement && target.id === "lang-select" && target.form) {
    target.form.submit();
  }
});
