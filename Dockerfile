# Airflow 3.3 with the agent provider and the example DAGs; used by every Airflow service (and the
# local LLM server) in docker-compose.yml.
FROM apache/airflow:3.3.2

# The image runs as the "airflow" user; installing with the pinned Airflow version keeps pip from
# up- or downgrading Airflow itself while resolving the provider's dependencies.
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/src/airflow-agent-provider/
COPY --chown=airflow:0 airflow_agent_provider /opt/airflow/src/airflow-agent-provider/airflow_agent_provider
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/airflow/src/airflow-agent-provider[deploy]"

COPY --chown=airflow:0 dags /opt/airflow/dags
# Created as airflow so that the named volume mounted here is writable by the Airflow services.
RUN mkdir -p /opt/airflow/config
