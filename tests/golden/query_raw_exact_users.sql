SELECT region AS region, uniqExact(user_id) AS exact_users FROM analytics.events WHERE region <> {p0: String} GROUP BY region ORDER BY region ASC LIMIT 10001
