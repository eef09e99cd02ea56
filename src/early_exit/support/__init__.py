"""Support code every floor uses: errors, atomic writes, job logs, table reading, hub
downloads and the results layout. Imports nothing else of the package."""
