"""A Dify DSL's ``dataset_configs`` points at local knowledge bases on import: by id when one
matches, else by name; a warning for each that is missing. SQLite and PostgreSQL."""

from __future__ import annotations

from parlour.services import appdef
from parlour.services.knowledge import Knowledge

DSL = """
kind: app
version: 0.3.0
app: {name: Helper, mode: chat}
model_config:
  model: {provider: openai, name: gpt-4o-mini, mode: chat, completion_params: {}}
  dataset_configs:
    retrieval_model: multiple
    top_k: 3
    datasets:
      datasets:
      - dataset: {enabled: true, id: %s}
      - dataset: {enabled: true, id: 6d1f1b4e-0000-4000-8000-000000000001, name: billing}
      - dataset: {enabled: true, id: 6d1f1b4e-0000-4000-8000-000000000002}
      - dataset: {enabled: true, id: pets}
"""


async def test_import_maps_datasets_onto_knowledge_bases(knowledge: Knowledge) -> None:
    pets = await knowledge.create("pets")
    billing = await knowledge.create("billing")
    definition = appdef.load(DSL % pets["id"])
    assert not any("dataset" in w for w in definition.warnings)
    async with knowledge.sessions.begin() as session:
        notes = await appdef.attach_datasets(session, definition)
        app = await appdef.create_from(session, definition)
    ids = [d["dataset"]["id"] for d in app.config["dataset_configs"]["datasets"]["datasets"]]
    assert ids == [pets["id"], billing["id"], "6d1f1b4e-0000-4000-8000-000000000002", pets["id"]]
    assert len(notes) == 1 and "6d1f1b4e-0000-4000-8000-000000000002" in notes[0]
    assert notes[0] in definition.warnings
