// TISS Gateway console: the little the pages need (no inline scripts: the CSP forbids them).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Forms that change something ask first (data-confirmar holds the question).
  document.querySelectorAll("form[data-confirmar]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirmar"))) {
        event.preventDefault();
      }
    });
  });
  // Capa do lote: the print button.
  var imprimir = document.getElementById("imprimir");
  if (imprimir) {
    imprimir.addEventListener("click", function () { window.print(); });
  }
  // Lotes list: a whole row opens its lote.
  document.querySelectorAll("tr[data-lote-id]").forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input, select")) { return; }
      var link = row.querySelector("a.link-lote");
      if (link) { window.location.href = link.href; }
    });
  });
});
