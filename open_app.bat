@echo off
rem Install what is missing, then open Chain Studio.
setlocal
cd /d "%~dp0"
call install.bat
if errorlevel 1 exit /b %errorlevel%
venvs\app\Scripts\python.exe -m app ui %*
