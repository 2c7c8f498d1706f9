// The search page: text and/or an image → POST /search → a grid of results with thumbnails.
// Plain JavaScript, no libraries; every value from the server is inserted as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const CUSTOM = "__custom__";
let imageDataUrl = null; // the query image as a data: URL (the API accepts it as base64)
let health = null;

function authHeaders() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function loadHealth() {
  try {
    const res = await fetch("/health");
    health = await res.json();
  } catch (err) {
    $("status").textContent = "server unreachable";
    return;
  }
  const mods = Object.entries(health.modalities).map(([m, n]) => `${n} ${m}`).join(", ");
  $("status").textContent = `${health.items} items (${mods}) · ${health.model.name || "model"} · ${health.dim}-d`;
  const select = $("instruction");
  select.replaceChildren(new Option("(no instruction)", ""));
  for (const text of health.instructions) select.add(new Option(text, text));
  select.add(new Option("Custom…", CUSTOM));
  select.selectedIndex = 1;
  $("rerank-label").hidden = !health.rerank;
  if (health.auth) {
    $("token-label").hidden = false;
    $("token").value = sessionStorage.getItem("umr-token") || "";
  }
}

function setImage(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) {
    showError(`${file.name || "that file"} is not an image`);
    return;
  }
  const reader = new FileReader();
  reader.onload = () => {
    imageDataUrl = reader.result;
    $("preview").src = imageDataUrl;
    $("preview-name").textContent = file.name || "pasted image";
    $("preview-wrap").hidden = false;
    $("drop-hint").hidden = true;
    showError("");
  };
  reader.onerror = () => showError("could not read that file");
  reader.readAsDataURL(file);
}

function clearImage() {
  imageDataUrl = null;
  $("image-input").value = "";
  $("preview-wrap").hidden = true;
  $("drop-hint").hidden = false;
}

function card(hit) {
  const el = document.createElement("article");
  el.className = "result";
  el.dataset.id = hit.id;
  if (hit.thumbnail) {
    const img = document.createElement("img");
    img.className = "thumb";
    img.src = hit.thumbnail;
    img.alt = hit.text || hit.id;
    img.loading = "lazy";
    el.append(img);
  } else {
    const box = document.createElement("div");
    box.className = "thumb text-only";
    box.textContent = hit.text || "";
    el.append(box);
  }
  const meta = document.createElement("div");
  meta.className = "meta";
  const badge = document.createElement("span");
  badge.className = `badge m-${hit.modality.replace(",", "-")}`;
  badge.textContent = hit.modality === "image,text" ? "image+text" : hit.modality;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = hit.score.toFixed(3);
  score.title = hit.rerank_score === null ? "inner product" :
    `retrieval ${hit.retrieval_score.toFixed(3)} + re-rank ${hit.rerank_score.toFixed(3)}`;
  const rank = document.createElement("span");
  rank.className = "rank";
  rank.textContent = `#${hit.rank}`;
  meta.append(rank, badge, score);
  const id = document.createElement("div");
  id.className = "did";
  id.textContent = hit.id;
  el.append(meta, id);
  if (hit.thumbnail && hit.text) {
    const caption = document.createElement("div");
    caption.className = "caption";
    caption.textContent = hit.text;
    el.append(caption);
  }
  return el;
}

async function search(event) {
  if (event) event.preventDefault();
  const text = $("query-text").value.trim();
  if (!text && !imageDataUrl) {
    showError("Type a query, add an image, or both.");
    return;
  }
  let instruction = $("instruction").value;
  if (instruction === CUSTOM) instruction = $("instruction-custom").value.trim();
  const body = { k: Number($("k").value) || 10, thumbnails: true };
  if (text) body.text = text;
  if (imageDataUrl) body.image = imageDataUrl;
  if (instruction) body.instruction = instruction;
  if ($("modality").value) body.modality = $("modality").value;
  if (!$("rerank-label").hidden && $("rerank").checked) body.rerank = true;
  if (health && health.auth) sessionStorage.setItem("umr-token", $("token").value.trim());

  $("search-btn").disabled = true;
  $("latency").textContent = "searching…";
  const started = performance.now();
  try {
    const res = await fetch("/search", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({ detail: `HTTP ${res.status}` }));
    const roundTrip = performance.now() - started;
    if (!res.ok) {
      showError(data.detail || `HTTP ${res.status}`);
      $("latency").textContent = "";
      return;
    }
    showError("");
    $("results").replaceChildren(...data.results.map(card));
    const n = data.results.length;
    $("latency").textContent = `${n} result${n === 1 ? "" : "s"} in ${roundTrip.toFixed(0)} ms ` +
      `(server ${data.latency_ms.toFixed(1)} ms: embed ${data.timings_ms.embed.toFixed(1)}, ` +
      `search ${data.timings_ms.search.toFixed(1)} ms)`;
    document.body.dataset.searches = String(Number(document.body.dataset.searches || 0) + 1);
  } catch (err) {
    showError(`request failed: ${err.message}`);
    $("latency").textContent = "";
  } finally {
    $("search-btn").disabled = false;
  }
}

function wire() {
  $("search-form").addEventListener("submit", search);
  $("choose-image").addEventListener("click", (e) => { e.preventDefault(); $("image-input").click(); });
  $("image-input").addEventListener("change", (e) => setImage(e.target.files[0]));
  $("clear-image").addEventListener("click", clearImage);
  $("instruction").addEventListener("change", () => {
    $("instruction-custom").hidden = $("instruction").value !== CUSTOM;
  });
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    setImage(e.dataTransfer.files[0]);
  });
  zone.addEventListener("keydown", (e) => { if (e.key === "Enter") $("image-input").click(); });
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
    if (file) setImage(file);
  });
}

wire();
loadHealth().then(() => { document.body.dataset.ready = "1"; });
