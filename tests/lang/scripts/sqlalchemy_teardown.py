"""SQLAlchemy (QueuePool, psycopg2), leaking: a Session checked out of the pool and never closed, inside a
transaction at exit. The pool opened the connection for an earlier, well-behaved use; the culprit is
where the forgotten session's transaction began. Python's finalization closes it (teardown)."""
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

engine = create_engine("postgresql+psycopg2://", pool_size=2, max_overflow=0, pool_timeout=2)
Session = sessionmaker(bind=engine)


def warm_up():
    with engine.connect() as c:  # pqleak-test: open
        c.execute(text("select 1"))


def count_orders(session):
    return session.execute(text("select count(*) from pg_class")).scalar()  # pqleak-test: begin


warm_up()
forgotten = Session()
count_orders(forgotten)
print("done")
