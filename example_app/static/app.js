// Pressroom's own behaviour; everything about states lives in statemgr.js.

// Switch user as soon as the select changes; the button is for no-JS.
const login = document.querySelector("form.login");
if (login) {
  login.querySelector("button.switch").hidden = true;
  login.querySelector("select").addEventListener("change", () => login.requestSubmit());
}

// The index lists what is not deleted: a card whose project was deleted,
// here or elsewhere, leaves the list.
document.addEventListener("statemgr:update", (event) => {
  const card = event.target.closest?.(".cards > .card");
  if (card && event.detail.object.managers.state?.current === "DELETED") card.remove();
});

// Server-rendered parts of the page (dates, reasons, history) follow the
// object: when its state changes, here or elsewhere, fetch them again.
if (document.querySelector("[data-fragment][id]")) {
  const seen = new Map();
  document.addEventListener("statemgr:update", async (event) => {
    const { model, id, object } = event.detail;
    const key = `${model}:${id}`;
    const states = Object.values(object.managers).map((m) => m.current).join();
    const before = seen.get(key);
    seen.set(key, states);
    if (before === undefined || before === states) return;
    const response = await fetch(location.href, { headers: { Accept: "text/html" } });
    if (!response.ok) return;
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const fragment of document.querySelectorAll("[data-fragment][id]")) {
      const fresh = page.getElementById(fragment.id);
      if (fresh) fragment.replaceWith(fresh);
    }
  });
}
