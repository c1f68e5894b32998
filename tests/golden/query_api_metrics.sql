SELECT sum(count_all) AS total_events, uniqMerge(uniq_user_id) AS unique_users, sum(sum_revenue) AS total_revenue FROM semantic.events_totals_24577862ce
