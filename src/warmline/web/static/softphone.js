// The softphone: the browser channel (chat.* JSON frames) on the agent's WebSocket.
// Tokens are shown as they arrive; a barge-in sends what was shown so far and drops the
// rest of that turn, as Twilio stops playing an interrupted answer. Speech input/output
// use the Web Speech API only when the browser has it.

const $ = (id) => document.getElementById(id);
const transcript = $("transcript");
const statusEl = $("status");
const input = $("say");
const barge = $("barge");
const hangup = $("hangup");

const state = {
  ws: null,
  open: false,
  ended: false,
  bubble: null, // the agent bubble being streamed
  shown: "", // its text so far
  streamTurn: null,
  interruptedTurn: -1,
  dropped: 0,
};

function setStatus(text, kind) {
  statusEl.textContent = text;
  statusEl.dataset.kind = kind;
}

function scrollDown() {
  transcript.parentElement.scrollTop = transcript.parentElement.scrollHeight;
}

function addBubble(role, text, extra) {
  const li = document.createElement("li");
  li.className = `msg ${role}`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "You" : role === "agent" ? "Agent" : "";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(who, body);
  if (extra) li.append(extra);
  transcript.append(li);
  scrollDown();
  return li;
}

function badge(text, kind) {
  const b = document.createElement("span");
  b.className = `badge ${kind || ""}`;
  b.textContent = text;
  return b;
}

function setStreaming(on) {
  barge.disabled = !on;
  transcript.setAttribute("aria-busy", on ? "true" : "false");
}

function finishBubble() {
  if (state.bubble) state.bubble.classList.remove("streaming");
  state.bubble = null;
  setStreaming(false);
}

function onToken(frame) {
  const turn = typeof frame.turn === "number" ? frame.turn : 0;
  if (turn <= state.interruptedTurn) {
    state.dropped += 1; // the interrupted answer goes on arriving; nobody hears it
    transcript.dataset.dropped = String(state.dropped);
    return;
  }
  if (!state.bubble || state.streamTurn !== turn) {
    // An empty token outside a stream only closes one (e.g. the end of a cut answer).
    if (!frame.text) return;
    finishBubble();
    state.bubble = addBubble("agent", "");
    state.bubble.classList.add("streaming");
    state.bubble.dataset.turn = String(turn);
    state.shown = "";
    state.streamTurn = turn;
    setStreaming(true);
  }
  if (frame.intent && !state.bubble.querySelector(".badge.intent")) {
    state.bubble.querySelector(".who").append(badge(frame.intent, "intent"));
  }
  state.shown += frame.text || "";
  state.bubble.querySelector(".text").textContent = state.shown;
  scrollDown();
  if (frame.last) {
    const spoken = state.shown;
    finishBubble();
    speak(spoken);
  }
}

function onEnd(frame) {
  finishBubble();
  const h = frame.handoff || {};
  const kind = h.reason === "handoff" ? "handoff" : "end";
  const text =
    kind === "handoff"
      ? `Handed off to a person${h.topic ? ` (topic: ${h.topic})` : ""}${h.trigger ? `: ${h.trigger}` : ""}`
      : "The agent ended the call.";
  const li = addBubble("system", text);
  li.classList.add(kind);
  li.dataset.handoff = JSON.stringify(h);
  state.ended = true;
  setStatus(kind === "handoff" ? "handed off" : "call ended", "ended");
  hangup.textContent = "Call again";
}

function send(frame) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(frame));
  return true;
}

async function wsUrl() {
  const res = await fetch("/_warmline/config.json");
  const cfg = await res.json();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${cfg.wsPath}`;
}

async function call() {
  state.ended = false;
  state.interruptedTurn = -1;
  transcript.replaceChildren();
  setStatus("connecting…", "connecting");
  const ws = new WebSocket(await wsUrl());
  state.ws = ws;
  ws.addEventListener("open", () => {
    state.open = true;
    setStatus("connected", "open");
    hangup.textContent = "Hang up";
    send({ type: "chat.start" });
    input.focus();
  });
  ws.addEventListener("message", (ev) => {
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (frame.type === "chat.token") onToken(frame);
    else if (frame.type === "chat.end") onEnd(frame);
    else if (frame.message) addBubble("system", `Gateway: ${frame.message}`);
  });
  let opened = false;
  ws.addEventListener("open", () => {
    opened = true;
  });
  ws.addEventListener("close", () => {
    state.open = false;
    finishBubble();
    if (state.ws === ws && !opened) {
      // The handshake was refused: $connect answered non-2xx (e.g. the app checks
      // X-Twilio-Signature because TWILIO_AUTH_TOKEN is set) or the function failed.
      setStatus("could not connect", "closed");
      addBubble("system", "The WebSocket handshake was refused: see the warmline dev console.");
    } else if (state.ws === ws && !state.ended) setStatus("disconnected", "closed");
    hangup.textContent = "Call again";
  });
}

function ask(text) {
  text = text.trim();
  if (!text || state.ended) return;
  if (state.bubble) interrupt(); // talking over the agent is a barge-in
  if (send({ type: "chat.message", text })) addBubble("user", text);
}

function interrupt() {
  if (!state.bubble) return;
  const heard = state.shown;
  state.interruptedTurn = state.streamTurn;
  state.bubble.classList.add("interrupted");
  state.bubble.append(badge("interrupted", "cut"));
  finishBubble();
  send({ type: "chat.interrupt", heard });
  if (window.speechSynthesis) window.speechSynthesis.cancel();
}

// --- speech (optional) -------------------------------------------------------------------
const synth = "speechSynthesis" in window ? window.speechSynthesis : null;
if (synth) $("speak-wrap").hidden = false;
function speak(text) {
  if (!synth || !$("speak").checked || !text) return;
  synth.speak(new SpeechSynthesisUtterance(text));
}

const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
if (Recognition) {
  const mic = $("mic");
  mic.hidden = false;
  let rec = null;
  mic.addEventListener("click", () => {
    if (rec) {
      rec.stop();
      return;
    }
    rec = new Recognition();
    rec.lang = "en-US";
    rec.interimResults = false;
    rec.addEventListener("result", (ev) => ask(ev.results[0][0].transcript));
    rec.addEventListener("end", () => {
      rec = null;
      mic.setAttribute("aria-pressed", "false");
    });
    mic.setAttribute("aria-pressed", "true");
    if (state.bubble) interrupt();
    rec.start();
  });
}

// --- controls ----------------------------------------------------------------------------
$("composer").addEventListener("submit", (ev) => {
  ev.preventDefault();
  ask(input.value);
  input.value = "";
  input.focus();
});
barge.addEventListener("click", () => {
  interrupt();
  input.focus();
});
hangup.addEventListener("click", () => {
  if (state.open && !state.ended) {
    state.ended = true;
    state.ws.close(1000, "hang up");
    setStatus("hung up", "closed");
  } else {
    call();
  }
});
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && state.bubble) {
    ev.preventDefault();
    interrupt();
  }
});

const keys = $("keys");
for (const digit of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#"]) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "key";
  b.textContent = digit;
  b.setAttribute("aria-label", `Key ${digit}`);
  b.addEventListener("click", () => {
    if (state.ended) return;
    if (state.bubble) interrupt();
    if (send({ type: "chat.dtmf", digit })) addBubble("user", `Pressed ${digit}`).classList.add("dtmf");
  });
  keys.append(b);
}

call();
