@echo off
rem Install Chain Studio: venvs\app, venvs\jupyter and the demo model. Safe to run again.
setlocal
cd /d "%~dp0"
where py >nul 2>nul
if %errorlevel%==0 (
  py -3.11 -m app.installer %*
) else (
  python -m app.installer %*
)
exit /b %errorlevel%
