from robyn import Robyn

app = Robyn(__file__)

def broken(:
    pass
