"""The story of pqleak's issue 6: a small order service, FastAPI + SQLAlchemy (QueuePool) + psycopg2,
served by uvicorn. GET /orders/{id} forgets its session inside a transaction: each request to it keeps
one pooled connection checked out, idle in a transaction, until the pool is exhausted and every route
fails with SQLAlchemy's TimeoutError (HTTP 500). GET /health is well behaved. STORY_FIXED=1 switches
the bug off. Connects with libpq's defaults (PGHOST, PGPORT, PGUSER, PGDATABASE)."""
import os

from fastapi import FastAPI
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

# A small pool: two forgotten sessions exhaust it, the third checkout waits 2 s and fails.
engine = create_engine("postgresql+psycopg2://", pool_size=2, max_overflow=0, pool_timeout=2)
SessionLocal = sessionmaker(bind=engine)
app = FastAPI()
FIXED = os.environ.get("STORY_FIXED") == "1"

# Sessions of recent orders, kept for a cache that was never finished: nothing closes them. (A session
# merely dropped leaks the same way, but only until Python's cyclic garbage collector happens to free
# it and the pool takes its connection back: the same bug, showing at random times.)
recent_sessions = []


@app.get("/health")
def health():
    with SessionLocal() as session:
        return {"ok": session.execute(text("select 1")).scalar() == 1}


@app.get("/orders/{order_id}")
def get_order(order_id: int):
    session = SessionLocal()
    if not FIXED:
        recent_sessions.append(session)  # the bug: kept, never closed
    try:
        row = session.execute(text("select :id as id, now() as at"), {"id": order_id}).one()  # story: begin
        return {"id": row.id, "at": row.at.isoformat()}
    finally:
        if FIXED:
            session.close()


@app.on_event("shutdown")
def dispose_pool():
    engine.dispose()  # closes the pool's idle connections; checked-out ones stay open
