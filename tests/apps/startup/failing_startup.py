from robyn import Robyn

app = Robyn(__file__)


@app.startup_handler
def connect_to_database():
    raise ConnectionRefusedError("database at 127.0.0.1:5432 refused the connection")
