"""The dashboard's pages, one module each; Streamlit runs each as a script."""
