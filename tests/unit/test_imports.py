"""What importing and first using the extension costs: no module an app does
not need."""

from __future__ import annotations

import subprocess
import sys
import textwrap

FIRST_TRANSITION = textwrap.dedent(
    """
    import sys

    import sqlalchemy as sa
    from sqlalchemy import orm
    from sqlalchemy.orm import Mapped, mapped_column

    from flask_statemgr import State, StateManager, Transition

    class DocState(StateManager):
        DRAFT = State(1, "Draft")
        DONE = State(2, "Done")
        finish = Transition(DRAFT, DONE, "Finish")

    class Base(orm.DeclarativeBase):
        pass

    class Doc(Base):
        __tablename__ = "doc"
        id: Mapped[int] = mapped_column(primary_key=True)
        _state: Mapped[int] = DocState.column(default=DocState.DRAFT)
        state = DocState("_state")

    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    Doc(_state=1).state.finish()
    with orm.Session(engine) as session:
        doc = Doc()
        session.add(doc)
        session.commit()
        doc.state.finish()
        session.commit()
        assert doc.state.DONE
    print(sorted(m for m in sys.modules if m.startswith("sqlalchemy.dialects.postgresql")))
    """
)


def test_a_first_transition_on_sqlite_imports_no_postgresql_dialect() -> None:
    # the PostgreSQL statements are compiled when first used there
    done = subprocess.run([sys.executable, "-c", FIRST_TRANSITION], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
