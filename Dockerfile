# Not exercised by CI (no container engine there); kept simple on purpose.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY campaigner ./campaigner
RUN pip install --no-cache-dir . && useradd --system --create-home campaigner
USER campaigner
WORKDIR /home/campaigner
ENV CAMPAIGNER_CONFIG=/home/campaigner/config.toml
EXPOSE 8025
CMD ["sh", "-c", "campaigner db upgrade && exec campaigner run --log-format json"]
