"""SQLAlchemy (QueuePool, psycopg2), idle: every session closed, but the pool still holds its idle
connection at exit (no engine.dispose()). Python's finalization closes it (held: a leak only in strict
mode)."""
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

engine = create_engine("postgresql+psycopg2://", pool_size=2, max_overflow=0, pool_timeout=2)
Session = sessionmaker(bind=engine)

with Session() as session:
    session.execute(text("select 1"))  # pqleak-test: open
print("done")
