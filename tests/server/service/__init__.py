"""The service layer answering queries exactly: properties, scenario, ingestion."""
