// Clicking a field of an intake review item highlights where its value came from in the document
// (EDI elements, text lines, PDF bounding boxes all carry data-f="<field keys>").
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-src]");
  if (!button) return;
  const key = button.dataset.src;
  document.querySelectorAll(".hl").forEach((el) => el.classList.remove("hl"));
  document.querySelectorAll("[data-src][aria-pressed='true']").forEach((el) => el.setAttribute("aria-pressed", "false"));
  button.setAttribute("aria-pressed", "true");
  const hits = document.querySelectorAll(`[data-f~="${key}"]`);
  hits.forEach((el) => el.classList.add("hl"));
  const status = document.getElementById("src-status");
  if (status) status.textContent = hits.length ? `${hits.length} source location(s) highlighted` : "no source location recorded";
  if (hits.length) hits[0].scrollIntoView({ block: "nearest" });
});

// What-if page: a scenario file chosen from disk is read into the textarea (the form still posts
// url-encoded text; the console takes no uploads).
document.addEventListener("change", async (event) => {
  const input = event.target.closest("input[type=file][data-into]");
  if (!input || !input.files.length) return;
  const target = document.getElementById(input.dataset.into);
  if (target) target.value = await input.files[0].text();
});
