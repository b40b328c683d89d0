console.log("console: not yet")
