import "./style.css";
import { App } from "./app";
import { applyTheme, storedTheme } from "./theme";

applyTheme(storedTheme());

const root = document.getElementById("app");
if (root) void new App(root).start();
