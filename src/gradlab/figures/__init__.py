"""The figures of each experiment, drawn from the arrays a run saved (plot_data.npz): numpy and matplotlib only."""
