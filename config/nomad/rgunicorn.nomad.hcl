# Nomad job: rgunicorn from the app's virtualenv (the wheel pip-installed there, as by
# config/ansible/rgunicorn.yml), with the same settings as its gunicorn.conf.py. raw_exec runs it
# as a plain process; Nomad's kill_signal TERM lets the workers finish their requests within
# graceful_timeout (kill_timeout is above it), and a template change reloads with HUP.
job "greenweb" {
  datacenters = ["dc1"]
  type        = "service"

  group "web" {
    count = 1

    network {
      port "http" {
        to = 8000
      }
    }

    service {
      name     = "greenweb"
      port     = "http"
      provider = "nomad"

      check {
        type     = "http"
        path     = "/api/status/"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "rgunicorn" {
      driver = "raw_exec"

      config {
        command = "/srv/greenweb/venv/bin/rgunicorn"
        args    = ["greenweb.wsgi", "-c", "local/gunicorn.conf.py"]
      }

      env {
        VIRTUAL_ENV = "/srv/greenweb/venv"
      }

      template {
        destination   = "local/gunicorn.conf.py"
        change_mode   = "signal"
        change_signal = "SIGHUP"
        data          = <<-EOT
          import multiprocessing
          chdir = "/srv/greenweb"
          bind = "0.0.0.0:{{ env "NOMAD_PORT_http" }}"
          workers = multiprocessing.cpu_count() * 2 + 1
          timeout = 30
          graceful_timeout = 30
          accesslog = "-"
        EOT
      }

      kill_signal  = "SIGTERM"
      kill_timeout = "45s"

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
