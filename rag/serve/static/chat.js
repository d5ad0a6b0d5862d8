// The chat page of `rag serve`: plain JavaScript, no library, nothing fetched from elsewhere.
"use strict";

const FOOTER = "\n\nSources:\n";  // the server's citation lines after the answer; the page lists sources itself
const KEY_STORE = "rag-api-key";
const page = {
  form: document.getElementById("ask-form"),
  question: document.getElementById("question"),
  ask: document.getElementById("ask"),
  retriever: document.getElementById("retriever"),
  key: document.getElementById("api-key"),
  conversation: document.getElementById("conversation"),
  status: document.getElementById("status"),
  template: document.getElementById("turn-template"),
};
let history = [];  // the conversation as OpenAI messages: follow-ups are condensed from it on the server

function headers() {
  const out = {"Content-Type": "application/json"};
  const key = page.key.value.trim();
  if (key) out["Authorization"] = "Bearer " + key;
  return out;
}

async function errorText(response) {
  if (response.status === 401) return "The server needs an API key: enter it above.";
  try {
    const body = await response.json();
    return (body.error && body.error.message) || ("HTTP " + response.status);
  } catch (e) {
    return "HTTP " + response.status;
  }
}

async function loadModels() {
  const response = await fetch("/v1/models", {headers: headers()});
  if (!response.ok) {
    page.status.textContent = await errorText(response);
    return;
  }
  const chosen = page.retriever.value;
  page.retriever.replaceChildren();
  for (const model of (await response.json()).data) {
    const option = document.createElement("option");
    option.value = model.id;
    option.textContent = model.id.replace(/^rag-/, "");
    page.retriever.append(option);
  }
  if (chosen) page.retriever.value = chosen;
  page.status.textContent = "";
}

function showSources(turn, sources) {
  const list = turn.querySelector(".sources");
  list.replaceChildren();
  for (const source of sources) {
    const item = document.createElement("li");
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = source.citation;
    if (source.score !== null && source.score !== undefined) {
      const score = document.createElement("span");
      score.className = "score";
      score.textContent = " (score " + source.score.toFixed(2) + ")";
      summary.append(score);
    }
    const text = document.createElement("div");
    text.className = "text";
    text.textContent = source.text;
    details.append(summary, text);
    item.append(details);
    list.append(item);
  }
}

function offerFeedback(turn, answerId) {
  const box = turn.querySelector(".feedback");
  const buttons = box.querySelectorAll("button");
  const status = box.querySelector(".feedback-status");
  box.hidden = false;
  const send = async (rating) => {
    buttons.forEach((b) => { b.disabled = true; });
    const response = await fetch("/v1/feedback", {method: "POST", headers: headers(),
                                                  body: JSON.stringify({id: answerId, rating: rating})});
    if (response.ok) {
      status.textContent = "Thanks: recorded.";
    } else {
      status.textContent = await errorText(response);
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  box.querySelector(".feedback-up").onclick = () => send("up");
  box.querySelector(".feedback-down").onclick = () => send("down");
}

// Server-sent events from a fetch body: "data: {...}" blocks separated by blank lines.
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (line.startsWith("data: ")) yield line.slice(6);
      }
    }
  }
}

async function ask(question) {
  const turn = page.template.content.firstElementChild.cloneNode(true);
  turn.querySelector(".question").textContent = question;
  const answer = turn.querySelector(".answer");
  answer.classList.add("waiting");
  page.conversation.append(turn);
  turn.scrollIntoView({block: "end"});
  const messages = [...history, {role: "user", content: question}];
  const response = await fetch("/v1/chat/completions", {
    method: "POST", headers: headers(),
    body: JSON.stringify({model: page.retriever.value, messages: messages, stream: true}),
  });
  if (!response.ok) {
    answer.classList.remove("waiting");
    page.status.textContent = await errorText(response);
    return;
  }
  let text = "";
  let answerId = null;
  let finished = false;
  for await (const data of events(response)) {
    if (data === "[DONE]") break;
    const chunk = JSON.parse(data);
    if (chunk.error) {
      page.status.textContent = chunk.error.message;
      break;
    }
    answerId = chunk.id || answerId;
    for (const choice of chunk.choices || []) {
      if (choice.delta && choice.delta.content) {
        text += choice.delta.content;
        answer.textContent = text.split(FOOTER)[0];
      }
      if (choice.finish_reason) finished = true;
    }
    if (chunk.sources) showSources(turn, chunk.sources);
    if (chunk.standalone_question && chunk.standalone_question !== question) {
      turn.querySelector(".searched").textContent = "searched for: " + chunk.standalone_question;
    }
  }
  answer.classList.remove("waiting");
  if (finished) {
    history = [...messages, {role: "assistant", content: text}];
    offerFeedback(turn, answerId);
  }
}

page.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = page.question.value.trim();
  if (!question) {
    page.status.textContent = "Type a question first.";
    return;
  }
  page.status.textContent = "";
  page.ask.disabled = true;
  page.question.value = "";
  try {
    await ask(question);
  } catch (e) {
    page.status.textContent = "The request failed: " + e.message;
  } finally {
    page.ask.disabled = false;
    page.question.focus();
  }
});
page.question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    page.form.requestSubmit();
  }
});
document.getElementById("new-topic").addEventListener("click", () => {
  history = [];
  page.conversation.replaceChildren();
  page.status.textContent = "";
});
page.key.value = localStorage.getItem(KEY_STORE) || "";
page.key.addEventListener("change", () => {
  localStorage.setItem(KEY_STORE, page.key.value.trim());
  loadModels();
});
loadModels();
