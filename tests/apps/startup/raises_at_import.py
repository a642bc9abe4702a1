from robyn import Robyn

app = Robyn(__file__)
settings = {"debug": True}
port = settings["port"]
