"""Ids of chat rows: random version 4 UUIDs in their canonical text form."""

import uuid

from parlour.storage.models import new_id


def test_new_id_is_a_canonical_version_4_uuid() -> None:
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
