SELECT toMonday(event_ts_day) AS event_ts, uniqMerge(uniq_user_id) AS unique_users FROM semantic.events_daily_5e57f04c2a GROUP BY toMonday(event_ts_day) ORDER BY event_ts DESC LIMIT 6
