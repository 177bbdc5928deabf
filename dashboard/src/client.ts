// The client's admin page (`webServer.port` of portway-client, as frpc's admin UI): the proxies from
// `/api/status`, refreshed every 10 s, and the configuration file with Save (`PUT /api/config`) and Reload
// (`GET /api/reload`). Served at /static/ by the client; the API is on the same origin, by relative URL.
import "./style.css";
import { request } from "./api";
import { type ClientProxyGroup, type ClientProxyRow, REDACTED, maskedSecrets, saveProblem, statusGroups } from "./clientModel";
import { h } from "./dom";

const REFRESH_MS = 10_000;

const app = document.getElementById("app") as HTMLElement;
const proxiesBox = h("section", { id: "proxies" }, h("h2", {}, "Proxies"), h("p", { class: "empty" }, "Loading…"));
const statusLine = h("p", { class: "notice", id: "status-line" }, "Loading…");
const editor = h("textarea", { id: "config", spellcheck: "false", autocomplete: "off", rows: "20", "aria-label": "Configuration file" });
const saveBtn = h("button", { type: "button", id: "save" }, "Save");
const reloadBtn = h("button", { type: "button", id: "reload" }, "Reload");
const configMsg = h("p", { class: "notice", id: "config-msg", role: "status" }, "");
configMsg.hidden = true;

function say(text: string, error: boolean): void {
  configMsg.textContent = text;
  configMsg.className = error ? "error" : "notice";
  configMsg.hidden = text === "";
}

function row(p: ClientProxyRow): HTMLTableRowElement {
  return h(
    "tr",
    { "data-proxy": p.name, "data-status": p.status },
    h("td", { "data-label": "Name", class: "name" }, p.name, p.stored ? h("small", {}, " (stored)") : null),
    h(
      "td",
      { "data-label": "Status" },
      h("span", { class: `badge ${p.running ? "on" : p.err ? "bad" : "off"}` }, p.status),
      p.err ? h("div", { class: "err" }, p.err) : null,
    ),
    h("td", { "data-label": "Local" }, h("span", { class: "mono" }, p.local || "–")),
    h("td", { "data-label": "Plugin" }, p.plugin || "–"),
    h("td", { "data-label": "Remote" }, h("span", { class: "mono" }, p.remote || "–")),
  );
}

function renderProxies(groups: ClientProxyGroup[]): void {
  const total = groups.reduce((n, g) => n + g.proxies.length, 0);
  const running = groups.reduce((n, g) => n + g.running, 0);
  proxiesBox.replaceChildren(
    h("h2", {}, "Proxies ", h("small", {}, `${running} of ${total} running`)),
    ...(total === 0 ? [h("p", { class: "empty" }, "No proxies configured.")] : []),
    ...groups.map((g) =>
      h(
        "div",
        { class: "group", "data-type": g.type },
        h("h3", {}, g.type.toUpperCase(), " ", h("small", {}, `${g.running}/${g.proxies.length} running`)),
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ...["Name", "Status", "Local", "Plugin", "Remote"].map((t) => h("th", {}, t)))),
          h("tbody", {}, ...g.proxies.map(row)),
        ),
      ),
    ),
  );
}

async function refreshStatus(): Promise<void> {
  try {
    renderProxies(statusGroups(JSON.parse(await request("status")) as unknown));
    statusLine.className = "notice";
    statusLine.textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}; refreshed every ${REFRESH_MS / 1000} s.`;
  } catch (e) {
    statusLine.className = "error";
    statusLine.textContent = `Proxies: ${e instanceof Error ? e.message : String(e)}`;
  }
  app.dataset.loaded = "true";
}

async function loadConfig(): Promise<void> {
  try {
    editor.value = await request("config");
    const n = maskedSecrets(editor.value);
    editor.dataset.masked = String(n);
    say(n > 0 ? `${n} secret${n === 1 ? " is" : "s are"} shown as ${REDACTED}.` : "", false);
  } catch (e) {
    say(`Cannot read the configuration: ${e instanceof Error ? e.message : String(e)}`, true);
  }
}

async function busy(btn: HTMLButtonElement, work: () => Promise<void>): Promise<void> {
  saveBtn.disabled = reloadBtn.disabled = true;
  btn.setAttribute("aria-busy", "true");
  try {
    await work();
  } finally {
    saveBtn.disabled = reloadBtn.disabled = false;
    btn.removeAttribute("aria-busy");
  }
}

saveBtn.addEventListener("click", () =>
  busy(saveBtn, async () => {
    const problem = saveProblem(editor.value);
    if (problem) return say(problem, true);
    try {
      await request("config", { method: "PUT", body: editor.value, headers: { "Content-Type": "text/plain; charset=utf-8" } });
      say("Saved. The client applies the file at the next Reload.", false);
    } catch (e) {
      say(`Not saved: ${e instanceof Error ? e.message : String(e)}`, true);
    }
  }),
);

reloadBtn.addEventListener("click", () =>
  busy(reloadBtn, async () => {
    try {
      const text = (await request("reload")).trim();
      say(text ? `Reloaded: ${text}` : "Reloaded: the client applies the saved file now.", false);
      await Promise.all([refreshStatus(), loadConfig()]);
    } catch (e) {
      say(`Reload refused: ${e instanceof Error ? e.message : String(e)}`, true);
    }
  }),
);

app.replaceChildren(
  h("header", {}, h("h1", {}, "Portway client"), statusLine),
  proxiesBox,
  h(
    "section",
    { id: "configuration" },
    h("h2", {}, "Configuration"),
    h(
      "p",
      { class: "hint" },
      `Secrets (tokens, passwords) are shown as ${REDACTED} and never leave the client. Leave a ${REDACTED} line as it is to keep that secret (the client puts the stored value back when it saves; the mask is never written over a secret), or type a new value in its place. Save checks the file and writes it; Reload applies it.`,
    ),
    editor,
    h("div", { class: "actions" }, saveBtn, reloadBtn),
    configMsg,
  ),
);

void refreshStatus();
void loadConfig();
window.setInterval(() => void refreshStatus(), REFRESH_MS);
