// The demo chat's page (pyapp/demo.py describes the protocol). Plain JavaScript, no build step.
// Everything users typed reaches the page through textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let socket = null;
let activeRoom = null;
let shownRooms = []; // the room list as last shown
let retry = null; // the timer of the next reconnection
let delay = 500; // before it, doubled at each failure up to MOST_DELAY
const MOST_DELAY = 8000;
const present = new Map(); // room -> the names of who is there

// What the page keeps across reloads of this tab (sessionStorage): whose it is, where it is in
// each of its rooms (room -> [epoch, offset], null before its first connection), the lines it
// shows and the room it talks in, so that coming back it shows them again and asks for what
// it missed only.
const KEY = "chat";
const MOST_LINES = 500;
let kept = { user: null, positions: null, log: [] };

function load(user) {
  try {
    const stored = JSON.parse(sessionStorage.getItem(KEY));
    if (stored?.user === user && Array.isArray(stored.log)) return stored;
  } catch {
    // nothing kept, or nothing usable: start afresh
  }
  return { user, positions: null, log: [] };
}

function save() {
  sessionStorage.setItem(KEY, JSON.stringify(kept));
}

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

function showLine({ kind, text, room }) {
  const item = document.createElement("li");
  item.className = kind;
  if (room) item.dataset.room = room;
  item.textContent = text;
  const log = $("log");
  log.append(item);
  log.scrollTop = log.scrollHeight;
}

function addLine(kind, text, room = null) {
  const line = { kind, text, room };
  showLine(line);
  kept.log.push(line);
  kept.log.splice(0, kept.log.length - MOST_LINES);
  save();
}

// A room's lines are forgotten when what was said there meanwhile cannot be told.
function forgetRoom(room) {
  kept.log = kept.log.filter((line) => line.room !== room);
  for (const item of [...$("log").children]) if (item.dataset.room === room) item.remove();
}

function showPresent() {
  const list = $("present");
  list.replaceChildren();
  $("present-room").textContent = activeRoom ? `#${activeRoom}` : "";
  for (const user of [...(present.get(activeRoom) ?? [])].sort()) {
    const item = document.createElement("li");
    item.textContent = user;
    list.append(item);
  }
}

function setActive(room) {
  activeRoom = room;
  kept.active = room;
  save();
  $("line").placeholder = room ? `message #${room}, or /msg name text` : "/msg name text";
  for (const item of $("rooms").children) item.classList.toggle("active", item.dataset.room === room);
  showPresent();
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
  // A room just joined becomes the one to talk in; one just left hands over to another. A
  // page that comes back talks where it did.
  const comingBack = shownRooms.length === 0 && rooms.includes(kept.active);
  const joined = comingBack ? kept.active : rooms.find((room) => !shownRooms.includes(room));
  shownRooms = rooms;
  // Where the page is in a room it left no longer matters.
  const positions = kept.positions ?? {};
  kept.positions = Object.fromEntries(rooms.filter((room) => positions[room]).map((room) => [room, positions[room]]));
  save();
  for (const room of present.keys()) if (!rooms.includes(room)) present.delete(room);
  setActive(joined ?? (rooms.includes(activeRoom) ? activeRoom : rooms[0] ?? null));
}

// A room's message is new unless its offset is one the page has had already: then it is
// dropped. A new one moves the page's position in the room on.
const KEPT = new Set(["message", "joined", "left"]); // what a room's history keeps
function isNew({ type, room, offset }) {
  const position = kept.positions?.[room];
  if (!KEPT.has(type) || !position || typeof offset !== "number") return true;
  if (offset <= position[1]) return false;
  position[1] = offset;
  save();
  return true;
}

function changePresence(room, user, here) {
  const users = present.get(room);
  if (!users) return;
  if (here) users.add(user);
  else users.delete(user);
  if (room === activeRoom) showPresent();
}

// What the server sent, as a line of the log (or a change of the room list or of who is here).
const render = {
  welcome: ({ user }) => { $("who").textContent = `logged in as ${user}`; },
  position: ({ room, epoch, offset, reset }) => {
    if (reset) forgetRoom(room);
    kept.positions = { ...kept.positions, [room]: [epoch, offset] };
    save();
    if (reset) addLine("notice", `#${room}: what was said while you were away is lost; the room starts again here`, room);
  },
  present: ({ room, users }) => {
    present.set(room, new Set(users));
    if (room === activeRoom) showPresent();
  },
  rooms: ({ rooms }) => showRooms(rooms),
  message: ({ room, from, text }) => addLine("message", `#${room} ${from}: ${text}`, room),
  private: ({ from, to, text }) => addLine("private", `${from} → ${to} (private): ${text}`),
  joined: ({ room, user }) => {
    changePresence(room, user, true);
    addLine("joined", `${user} joined #${room}`, room);
  },
  left: ({ room, user }) => {
    changePresence(room, user, false);
    addLine("left", `${user} left #${room}`, room);
  },
  notice: ({ text }) => addLine("notice", text),
};

function send(message) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

// The socket's address: a page that has been in rooms before names them and where it was in
// each, to be put back there and sent what it missed.
function roomsUrl() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const resume = kept.positions ? `?resume=${encodeURIComponent(JSON.stringify(kept.positions))}` : "";
  return `${scheme}://${location.host}/rooms${resume}`;
}

function connect(user) {
  retry = null;
  show(true);
  kept = load(user);
  $("log").replaceChildren();
  kept.log.forEach(showLine);
  shownRooms = [];
  present.clear();
  const ws = new WebSocket(roomsUrl());
  socket = ws;
  document.body.dataset.socket = "connecting";
  let opened = false;
  ws.onopen = () => {
    opened = true;
    delay = 500;
    document.body.dataset.socket = "open";
    $("status").textContent = "";
  };
  ws.onmessage = ({ data }) => {
    const message = JSON.parse(data);
    if (isNew(message)) render[message.type]?.(message);
  };
  ws.onclose = ({ code }) => {
    if (socket !== ws) return; // a socket this page has already replaced (a logout)
    socket = null;
    if (!opened && code === 1006) {
      // Refused before it opened: the server answers the handshake 401 without a login (a
      // browser only ever sees 1006 here). The session may be gone, or the server: ask.
      fetch("/me")
        .then((answer) => answer.json())
        .then(({ user: still }) => {
          if (still) return comeBack(still, code);
          document.body.dataset.socket = "refused";
          showLogin("please log in");
        })
        .catch(() => comeBack(user, code));
    } else {
      comeBack(user, code);
    }
  };
}

// Closed by the server, or the network: connect again after a while, picking up from where
// the page was.
function comeBack(user, code) {
  document.body.dataset.socket = "closed";
  $("status").textContent = `disconnected (${code}): coming back in ${Math.round(delay / 1000)} s`;
  retry = setTimeout(() => connect(user), delay);
  delay = Math.min(2 * delay, MOST_DELAY);
}

$("login").onsubmit = async (event) => {
  event.preventDefault();
  const answer = await fetch("/login", { method: "POST", body: new URLSearchParams(new FormData($("login"))) });
  const { user, error } = await answer.json();
  if (answer.ok) {
    $("login-error").textContent = "";
    $("who").textContent = `logged in as ${user}`;
    connect(user);
  } else {
    $("login-error").textContent = error;
  }
};

$("logout").onclick = async () => {
  const ws = socket;
  socket = null;
  clearTimeout(retry);
  ws?.close(1000);
  document.body.dataset.socket = "none";
  sessionStorage.removeItem(KEY);
  kept = { user: null, positions: null, log: [] };
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
  .then(({ user }) => (user ? connect(user) : showLogin()));
