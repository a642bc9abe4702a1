"""Sessions and one login for a page and its WebSocket (tests/test_sessions_auth.py): the
page's login puts the user in the signed session cookie, and the app's one
AuthenticationHandler knows them by it on HTTP routes and on the WebSocket's handshake (or by
a bearer token, for clients that are not browsers)."""

from robyn import Request, Response, Robyn
from robyn.authentication import AuthenticationHandler, BearerGetter, Identity

app = Robyn(__file__)
app.configure_sessions(secret_key="a test secret, not for production", cookie_name="sid")  # noqa: S106

TOKENS = {"t0k3n": "bob"}
# One object returned to every client: a session's cookie must never stick to it.
OK = Response(200, {"content-type": "text/plain"}, "ok")


class SessionOrToken(AuthenticationHandler):
    def authenticate(self, request: Request) -> Identity | None:
        user = request.session.get("user") or TOKENS.get(self.token_getter.get_token(request) or "")
        return Identity(claims={"user": user}) if user else None


app.configure_authentication(SessionOrToken(BearerGetter()))


@app.post("/login")
def login(request: Request) -> dict:
    request.session["user"] = request.json()["user"]
    return {"user": request.session["user"]}


@app.get("/logout")
def logout(request: Request) -> str:
    request.session.clear()
    return "bye"


@app.get("/me", auth_required=True)
def me(request: Request) -> dict:
    return {"user": request.identity.claims["user"]}


@app.get("/counter")
async def counter(request: Request) -> dict:
    request.session["count"] = request.session.get("count", 0) + 1
    return {"count": request.session["count"]}


@app.get("/cart/add")
def add_to_cart(request: Request, item: str) -> dict:
    # Changed in place, not by setting a key: still saved.
    request.session.setdefault("cart", []).append(item)
    return {"cart": request.session["cart"]}


@app.get("/remember")
def remember(request: Request) -> Response:
    request.session["seen"] = True
    return OK


@app.get("/plain")
def plain() -> Response:
    return OK


@app.get("/not-json")
def not_json(request: Request) -> str:
    request.session["when"] = object()
    return "unreachable: the session cannot be saved"


@app.websocket("/chat")
async def chat(websocket):
    user = websocket.identity.claims["user"]
    async for message in websocket:
        await websocket.send_text(f"{user}: {message}")


@chat.on_connect
async def chat_login(websocket):
    if await websocket.authenticate() is None:
        return Response(401, {"WWW-Authenticate": "Bearer"}, "log in first")
    return f"welcome {websocket.identity.claims['user']}"


@app.websocket("/peek")
async def peek(websocket):
    async for _ in websocket:
        pass


@peek.on_connect
def peek_session(websocket):
    try:
        websocket.session["user"] = "mallory"
        refused = ""
    except TypeError as error:
        refused = str(error)
    return {"session": dict(websocket.session), "write": refused}


@app.websocket("/echo")
async def echo(websocket):
    async for message in websocket:
        await websocket.send_text(message)
