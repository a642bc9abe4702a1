// The demo chat's page (pyapp/demo.py describes the protocol). Plain JavaScript, no build step.
// Everything users typed reaches the page through textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let activeRoom = null;
let shownRooms = []; // the room list as last shown

function show(loggedIn) {
  $("login").hidden = loggedIn;
  $("chat").hidden = !loggedIn;
  $("logout").hidden = !loggedIn;
}

function showLogin(error = "") {
  show(false);
  $("who").textContent = "not logged in";
  $("login-error").textContent = error;
  $("name").focus();
}

function addLine(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  const log = $("log");
  log.append(item);
  log.scrollTop = log.scrollHeight;
}

function setActive(room) {
  activeRoom = room;
  $("line").placeholder = room ? `message #${room}, or /msg name text` : "/msg name text";
  for (const item of $("rooms").children) item.classList.toggle("active", item.dataset.room === room);
}

function showRooms(rooms) {
  const list = $("rooms");
  list.replaceChildren();
  for (const room of rooms) {
    const item = document.createElement("li");
    item.dataset.room = room;
    const pick = document.createElement("button");
    pick.className = "room";
    pick.textContent = `#${room}`;
    pick.onclick = () => setActive(room);
    const leave = document.createElement("button");
    leave.className = "leave";
    leave.textContent = "leave";
    leave.title = `leave #${room}`;
    leave.onclick = () => send({ type: "leave", room });
    item.append(pick, leave);
    list.append(item);
  }
  // A room just joined becomes the one to talk in; one just left hands over to another.
  const joined = rooms.find((room) => !shownRooms.includes(room));
  shownRooms = rooms;
  setActive(joined ?? (rooms.includes(activeRoom) ? activeRoom : rooms[0] ?? null));
}
// What the server sent, as a line of the log (or a change of the room list).
const render = {
  welcome: ({ user }) => { $("who").textContent = `logged in as ${user}`; },
  rooms: ({ rooms }) => showRooms(rooms),
  message: ({ room, from, text }) => addLine("message", `#${room} ${from}: ${text}`),
  private: ({ from, to, text }) => addLine("private", `${from} → ${to} (private): ${text}`),
  joined: ({ room, user }) => addLine("joined", `${user} joined #${room}`),
  left: ({ room, user }) => addLine("left", `${user} left #${room}`),
  notice: ({ text }) => addLine("notice", text),
};

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function connect() {
  show(true);
  $("log").replaceChildren();
  shownRooms = [];
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/rooms`);
  socket = ws;
  document.body.dataset.socket = "connecting";
  let opened = false;
  ws.onopen = () => {
    opened = true;
    document.body.dataset.socket = "open";
    $("status").textContent = "";
  };
  ws.onmessage = ({ data }) => {
    const message = JSON.parse(data);
    render[message.type]?.(message);
  };
  ws.onclose = ({ code }) => {
    if (socket !== ws) return; // a socket this page has already replaced (a logout)
    socket = null;
    if (!opened) {
      // Refused before it opened: the server answers the handshake 401 without a login (a
      // browser only ever sees 1006 here), so the session is gone: log in again.
      document.body.dataset.socket = "refused";
      showLogin("please log in");
    } else {
      document.body.dataset.socket = "closed";
      $("status").textContent = `disconnected (${code}): reload the page to come back`;
    }
  };
}

$("login").onsubmit = async (event) => {
  event.preventDefault();
  const answer = await fetch("/login", { method: "POST", body: new URLSearchParams(new FormData($("login"))) });
  const { user, error } = await answer.json();
  if (answer.ok) {
    $("login-error").textContent = "";
    $("who").textContent = `logged in as ${user}`;
    connect();
  } else {
    $("login-error").textContent = error;
  }
};

$("logout").onclick = async () => {
  const ws = socket;
  socket = null;
  ws?.close(1000);
  document.body.dataset.socket = "none";
  await fetch("/logout", { method: "POST" });
  showLogin();
};

$("join").onsubmit = (event) => {
  event.preventDefault();
  const room = $("room-name").value.trim();
  if (room) send({ type: "join", room });
  $("room-name").value = "";
};

$("say").onsubmit = (event) => {
  event.preventDefault();
  const line = $("line").value.trim();
  const command = line.match(/^\/msg\s+(\S+)\s+(.+)$/);
  if (command) {
    send({ type: "private", to: command[1], text: command[2] });
  } else if (line.startsWith("/")) {
    addLine("notice", "commands: /msg name text");
    return;
  } else if (!activeRoom) {
    addLine("notice", "join a room to talk there");
    return;
  } else if (line) {
    send({ type: "say", room: activeRoom, text: line });
  }
  $("line").value = "";
};

// Logged in already (the session cookie outlives the page)? Then straight to the chat.
fetch("/me")
  .then((answer) => answer.json())
  .then(({ user }) => (user ? connect() : showLogin()));
