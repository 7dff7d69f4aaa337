// srgan web page: upload → POST /api/upscale (raw body) → before/after slider → download.
"use strict";

const $ = (id) => document.getElementById(id);
let limits = null;
let resultUrl = null;
let beforeUrl = null;

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

// The server's menu for a model: each output scale and the network scale that runs it
// (a shipped network of that scale where one is installed, else the closest above, then resized).
function fillScales(model) {
  const menu = model && model.menu ? model.menu : [{ scale: 4, network: 4 }];
  const preselect = model ? model.scale : 4;
  $("scale").innerHTML = "";
  for (const { scale, network } of menu) {
    const how = network === scale ? (scale === preselect ? " (model)" : " (network)") : ` (×${network} resized)`;
    $("scale").add(new Option(`×${scale}${how}`, String(scale), false, scale === preselect));
  }
}

async function loadModels() {
  try {
    limits = await (await fetch("/api/limits")).json();
    const models = await (await fetch("/api/models")).json();
    for (const m of models) {
      const scales = (m.scales || [m.scale]).map((s) => `×${s}`).join(" ");
      $("model").add(new Option(`${m.name} (${scales})`, m.name));
    }
    $("model").dataset.models = JSON.stringify(Object.fromEntries(models.map((m) => [m.name, m])));
    fillScales(models[0]);
  } catch (err) {
    setStatus(`cannot reach the server: ${err}`, true);
  }
}

$("model").addEventListener("change", () => {
  const models = JSON.parse($("model").dataset.models || "{}");
  fillScales(models[$("model").value]);
});

$("slider").addEventListener("input", () => {
  const pct = $("slider").value + "%";
  $("before-clip").style.width = pct;
  $("divider").style.left = pct;
});

// Keep the original stretched over exactly the result's displayed box.
function fitBefore() {
  $("before").style.width = $("after").clientWidth + "px";
}
window.addEventListener("resize", fitBefore);
// Browsers cannot show every format the server reads (TIFF, 16-bit...): then show only the result.
$("before").addEventListener("error", () => {
  $("before-clip").hidden = true;
  $("divider").hidden = true;
  $("note").textContent = "(this browser cannot display the original for comparison)";
});
$("before").addEventListener("load", () => {
  $("before-clip").hidden = false;
  $("divider").hidden = false;
});
$("after").addEventListener("load", fitBefore);

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return setStatus("choose an image first", true);
  if (limits && file.size > limits.max_upload_bytes) {
    return setStatus(`the file is ${(file.size / 1e6).toFixed(1)} MB; the limit is ${(limits.max_upload_bytes / 1e6).toFixed(1)} MB`, true);
  }
  const params = new URLSearchParams({ model: $("model").value, scale: $("scale").value, filename: file.name });
  $("go").disabled = true;
  setStatus(`upscaling ${file.name} ×${$("scale").value}…`);
  const started = performance.now();
  try {
    const response = await fetch(`/api/upscale?${params}`, {
      method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" },
    });
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
      throw new Error(detail);
    }
    const blob = await response.blob();
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    if (beforeUrl) URL.revokeObjectURL(beforeUrl);
    resultUrl = URL.createObjectURL(blob);
    beforeUrl = URL.createObjectURL(file);
    const name = (response.headers.get("Content-Disposition") || "").match(/filename="?([^";]+)"?/);
    $("download").href = resultUrl;
    $("download").download = name ? name[1] : "upscaled.png";
    $("note").textContent = "";
    $("before").src = beforeUrl;
    $("after").src = resultUrl;
    await $("after").decode();
    $("result").hidden = false;
    fitBefore();
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const choice = response.headers.get("X-Model-Choice");
    $("info").textContent = `${response.headers.get("X-Input-Size")} → ${response.headers.get("X-Output-Size")} in ${seconds} s`
      + (choice ? ` · ${choice}` : "");
    setStatus("done");
  } catch (err) {
    setStatus(`failed: ${err.message}`, true);
  } finally {
    $("go").disabled = false;
  }
});

loadModels();
