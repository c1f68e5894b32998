"""The warehouse client, the only code that talks to ClickHouse: the pool of clients and who
may use them (``pool``), the statements run on them (``statements``), what the warehouse holds
(``catalog``), and its failures in our words (``availability``, ``errors``, ``circuit``)."""
