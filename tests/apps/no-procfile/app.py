print("an app without a Procfile")
