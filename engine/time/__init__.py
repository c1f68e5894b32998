"""Time: ranges ``[from, to)``, instants, grain buckets in a time zone, and IANA zone facts."""
