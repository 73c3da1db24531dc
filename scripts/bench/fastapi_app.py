# The seed's stack: FastAPI under gunicorn + UvicornWorker, or uvicorn --workers. Same routes as hello.ts.
import os

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()

ITEMS = [
    {"id": i, "name": f"item {i}", "price": round(i * 1.25, 2), "tags": ["alpha", "beta", "gamma"],
     "inStock": i % 3 != 0}
    for i in range(40)
]


@app.get("/", response_class=PlainTextResponse)
async def root():
    return "Hello, World!"


@app.get("/json")
async def json():
    return {"count": len(ITEMS), "items": ITEMS}


@app.get("/pid", response_class=PlainTextResponse)
async def pid():
    return f"pid {os.getpid()}\n"
