"""Mixpeek's pagination: ``limit``/``page_size``, ``offset``/``page`` from the query or the body (the
body wins), and the ``pagination`` object of every list response."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query

DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int
    include_total: bool

    def of(self, body: Mapping[str, Any]) -> Page:
        """This page with the body's values over the query's."""
        limit = body.get("limit") or body.get("page_size") or self.limit
        offset = body.get("offset")
        if offset is None:
            offset = (body["page"] - 1) * limit if body.get("page") else self.offset
        return Page(limit, offset, bool(body.get("include_total", self.include_total)))

    def response(self, total: int | None, next_cursor: str | None = None) -> dict[str, Any]:
        pages = None if total is None else -(-total // self.limit)
        return {"total": total, "page": self.offset // self.limit + 1, "page_size": self.limit, "total_pages": pages,
                "next_cursor": next_cursor}  # fmt: skip


def page_query(
    limit: int | None = Query(None, ge=1, le=1000),
    page_size: int | None = Query(None, ge=1, le=1000),
    offset: int | None = Query(None, ge=0, le=10000),
    page: int | None = Query(None, ge=1),
    include_total: bool = False,
) -> Page:
    size = limit or page_size or DEFAULT_LIMIT
    start = offset if offset is not None else ((page - 1) * size if page else 0)
    return Page(size, start, include_total)


PageQuery = Annotated[Page, Depends(page_query)]
