"""SQL over the model's tables, translated to the query of ``/v1/query``.

A statement BI tools write over a source, parsed by sqlglot (dialect ``postgres``), becomes one
``/v1/query`` body: the dimensions and ``date_trunc`` grain it groups by, the measures it asks
(``MEASURE(m)``, a measure's own name, or an aggregate matching its kind: ``SUM(total_revenue)``,
``COUNT(*)`` for an unfiltered count, ``COUNT(DISTINCT user_id)`` for an exact distinct count
of that column), its ``WHERE`` as filters and a time range, ``HAVING`` as measure filters,
``ORDER BY``, ``LIMIT`` and ``OFFSET``. A subquery or CTE a tool wraps around such a query
(``SELECT * FROM (...) AS virtual_table LIMIT 1000``), or a plain view of a table it selects
from, is folded in.

Whatever cannot be answered exactly (a ``SUM`` of a distinct count, a join between sources, a
condition on the time column inside ``OR``, raw rows) is a ``SqlError`` with a SQLSTATE and a
message saying what to write instead; never a different question answered.
"""

from server.sql.errors import SqlError
from server.sql.translate.binding import Bound, bind, evaluate_moment, parameter_types
from server.sql.translate.builder import MAX_PARAMETERS, Output, Translated, output_name
from server.sql.translate.select import translate

__all__ = ["MAX_PARAMETERS", "Bound", "Output", "SqlError", "Translated", "bind",
           "evaluate_moment", "output_name", "parameter_types", "translate"]
