# trueup worker image: `trueup worker`, `trueup sources init`, and the rest of
# the CLI. Pure Python at run time (no JVM): in compose/, change capture runs
# in Kafka Connect, not in this image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/trueup/app

# Only what the package and its data files need: the build context also holds
# compose/secrets/ (generated passwords), .git, local state, which must never
# end up in an image layer.
COPY pyproject.toml README.md ./
COPY trueup ./trueup
COPY streams ./streams
COPY connectors ./connectors
COPY state ./state
COPY config ./config
COPY debezium ./debezium
COPY sql ./sql

# Editable install: trueup finds config/, sql/, debezium/ and avro/ next to its
# package (settings.PROJECT_ROOT), which a plain `pip install .` into
# site-packages would leave behind.
RUN pip install -e . \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/lib/trueup trueup \
 && mkdir -p /var/lib/trueup \
 && chown trueup:trueup /var/lib/trueup

ENV TRUEUP_DATA_DIR=/var/lib/trueup
USER trueup
EXPOSE 6066
CMD ["trueup", "worker"]
