"""SQLAlchemy (QueuePool, psycopg2), clean: sessions closed, the pool disposed of before exit."""
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

engine = create_engine("postgresql+psycopg2://", pool_size=2, max_overflow=0, pool_timeout=2)
Session = sessionmaker(bind=engine)

with Session() as session, session.begin():
    session.execute(text("select 1"))
session = Session()
session.execute(text("select 2"))
session.close()
with engine.connect() as c:
    c.execute(text("select 3"))
engine.dispose()
print("done")
