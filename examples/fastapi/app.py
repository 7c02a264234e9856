"""The app behind the proxy: it speaks plain HTTP on loopback and never sees a certificate."""

from __future__ import annotations

from fastapi import FastAPI, Request

app = FastAPI(title="certman example")


@app.get("/")
def hello(request: Request) -> dict[str, str]:
    # nginx terminates TLS and says so in X-Forwarded-Proto.
    return {"message": "hello from FastAPI behind nginx", "scheme": request.headers.get("x-forwarded-proto", "http")}
