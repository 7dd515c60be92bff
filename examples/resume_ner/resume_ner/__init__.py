"""The resume NER example: a seeded generator of annotated resumes (``resume_ner.dataset``).

The submodules are not imported here, so ``python -m resume_ner.dataset`` runs the module once.
"""

from __future__ import annotations

__all__: list[str] = []
